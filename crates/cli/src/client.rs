//! A small typed client of the daemon's HTTP API (`docs/http-api.md`), used by the client
//! subcommands (`submit`, `status`, `result`, `cancel`, `retry`, `jobs`, `workers`, `cron`).
//!
//! Errors are a [`ClientError`]: the API's `{error: {code, message}}` becomes its message, a
//! refused connection asks whether `offload serve` runs there, and each kind maps to a
//! documented exit code ([`ClientError::exit_code`]).

use std::time::Duration;

use offload_api::{
    ErrorBody, JobPage, JobPending, JobResult, JobState, JobStateView, Schedule, ScheduleList,
    SubmitRequest, Submitted, Worker, WorkerList,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

use crate::exit;

mod sse;
pub(crate) use sse::EventStream;

/// The daemon's default address.
pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:7070";

/// A failed call to the daemon.
#[derive(Debug, Error)]
pub(crate) enum ClientError {
    /// Nothing answers at that address.
    #[error("cannot connect to {url}: is `offload serve` running at {url}? (set --server or OFFLOAD_SERVER)")]
    Unreachable {
        /// The daemon's address.
        url: String,
    },
    /// The daemon wants a (different) bearer token.
    #[error("{message} (401 {code}): {hint}")]
    Unauthorized {
        /// The API's code.
        code: String,
        /// The API's message.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// The API answered with an error.
    #[error("{message} ({status} {code})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The API's stable code (`unknown_job`, `not_found`, …).
        code: String,
        /// What happened and what to do.
        message: String,
    },
    /// The answer is not what the API documents.
    #[error("unexpected answer from {url}: {reason}")]
    Unexpected {
        /// The request's URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The request failed on the way (timeout, reset, bad address).
    #[error("request to {url} failed: {reason}")]
    Transport {
        /// The request's URL.
        url: String,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// The documented exit code (README, "Exit codes"): bad requests are usage errors, an
    /// unreachable or unavailable daemon is [`exit::UNREACHABLE`].
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Self::Unreachable { .. } | Self::Transport { .. } => exit::UNREACHABLE,
            Self::Api { status: 503, .. } => exit::UNREACHABLE,
            Self::Unauthorized { .. } => exit::USAGE,
            Self::Api { status, .. } if (400..500).contains(status) => exit::USAGE,
            Self::Api { .. } | Self::Unexpected { .. } => exit::INTERNAL,
        }
    }
}

/// Where the daemon is and how to authenticate (the global `--server` / `--token`).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    /// A client of the daemon at `server` (`http://host:port`, a bare `host:port` is accepted).
    pub(crate) fn new(server: &str, token: Option<String>) -> Result<Self, ClientError> {
        let server = server.trim().trim_end_matches('/');
        let base = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        if !base.starts_with("http://") {
            return Err(ClientError::Transport {
                url: base,
                reason: "only http:// is supported (put a TLS proxy in front for https)".into(),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("offload/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            base,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Sends a request; any status that is not a success becomes a [`ClientError`].
    async fn send(&self, r: RequestBuilder, timeout: Duration) -> Result<Response, ClientError> {
        let r = r.timeout(timeout);
        let url = r
            .try_clone()
            .and_then(|r| r.build().ok())
            .map_or_else(|| self.base.clone(), |r| r.url().to_string());
        let resp = r.send().await.map_err(|e| self.transport(&url, &e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Response { url, inner: resp });
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(api_error(status, &body, self.token.is_some(), &url))
    }

    fn transport(&self, url: &str, e: &reqwest::Error) -> ClientError {
        if e.is_connect() {
            ClientError::Unreachable {
                url: self.base.clone(),
            }
        } else if e.is_timeout() {
            ClientError::Transport {
                url: url.to_owned(),
                reason: "the daemon did not answer in time".into(),
            }
        } else {
            ClientError::Transport {
                url: url.to_owned(),
                reason: error_chain(e),
            }
        }
    }

    /// `POST /v1/jobs`.
    pub(crate) async fn submit(&self, req: &SubmitRequest) -> Result<Submitted, ClientError> {
        let r = self.request(Method::POST, "/v1/jobs").json(req);
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/jobs/{id}`.
    pub(crate) async fn job(&self, id: &str) -> Result<Value, ClientError> {
        let r = self.request(Method::GET, &format!("/v1/jobs/{}", segment(id)));
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/jobs/{id}/result?wait=SECS`: the outcome, or the state while the job is not
    /// over (the daemon holds the request at most 60 s).
    pub(crate) async fn result(&self, id: &str, wait: Duration) -> Result<Polled, ClientError> {
        let wait = wait.min(MAX_WAIT);
        let r = self
            .request(Method::GET, &format!("/v1/jobs/{}/result", segment(id)))
            .query(&[("wait", format!("{}", wait.as_secs_f64()))]);
        let resp = self.send(r, wait + REQUEST_TIMEOUT).await?;
        if resp.inner.status() == StatusCode::ACCEPTED {
            return resp.json().await.map(Polled::Pending);
        }
        resp.json().await.map(Polled::Done)
    }

    /// `POST /v1/jobs/{id}/cancel`.
    pub(crate) async fn cancel(&self, id: &str) -> Result<JobStateView, ClientError> {
        let r = self.request(Method::POST, &format!("/v1/jobs/{}/cancel", segment(id)));
        // A running job is killed before the answer (the daemon waits up to 5 s for that).
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `POST /v1/jobs/{id}/retry`.
    pub(crate) async fn retry(&self, id: &str) -> Result<JobStateView, ClientError> {
        let r = self.request(Method::POST, &format!("/v1/jobs/{}/retry", segment(id)));
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/jobs/{id}/logs?attempt=&cursor=&limit=`: a page of the job's log lines.
    pub(crate) async fn logs(
        &self,
        id: &str,
        q: &offload_api::LogsQuery,
    ) -> Result<offload_api::JobLogs, ClientError> {
        let r = self
            .request(Method::GET, &format!("/v1/jobs/{}/logs", segment(id)))
            .query(q);
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `DELETE /v1/jobs/{id}`.
    pub(crate) async fn delete(&self, id: &str) -> Result<offload_api::JobDeleted, ClientError> {
        let r = self.request(Method::DELETE, &format!("/v1/jobs/{}", segment(id)));
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `POST /v1/jobs/retry` or `/v1/jobs/delete` (`action`) with a filter body.
    pub(crate) async fn bulk<B: Serialize>(
        &self,
        action: &str,
        body: &B,
    ) -> Result<offload_api::BulkDone, ClientError> {
        let r = self
            .request(Method::POST, &format!("/v1/jobs/{action}"))
            .json(body);
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/jobs?state=&job=&limit=&cursor=&include=result`.
    pub(crate) async fn jobs(&self, q: &ListQuery) -> Result<JobPage, ClientError> {
        // The table shows each result in short: ask for it (lists leave it out by default).
        let r = self
            .request(Method::GET, "/v1/jobs")
            .query(q)
            .query(&[("include", "result")]);
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/stats?from=&to=&step=&pool=&job=`.
    pub(crate) async fn stats(
        &self,
        q: &offload_api::StatsQuery,
    ) -> Result<offload_api::StatsSeries, ClientError> {
        let r = self.request(Method::GET, "/v1/stats").query(q);
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/workers`.
    pub(crate) async fn workers(&self) -> Result<Vec<Worker>, ClientError> {
        let r = self.request(Method::GET, "/v1/workers");
        let w: WorkerList = self.send(r, REQUEST_TIMEOUT).await?.json().await?;
        Ok(w.workers)
    }

    /// `POST /v1/pools/{pool}/workers/{pid}/kill`.
    pub(crate) async fn kill_worker(
        &self,
        pool: &str,
        pid: u32,
        req: &offload_api::KillRequest,
    ) -> Result<offload_api::WorkerKilled, ClientError> {
        let r = self
            .request(
                Method::POST,
                &format!("/v1/pools/{}/workers/{pid}/kill", segment(pool)),
            )
            .json(req);
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `POST /v1/pools/{pool}/broadcast`; waits as long as the broadcast's own timeout.
    pub(crate) async fn broadcast(
        &self,
        pool: &str,
        req: &offload_api::BroadcastRequest,
    ) -> Result<offload_api::Broadcasted, ClientError> {
        let wait = Duration::from_millis(
            req.timeout_ms
                .unwrap_or(offload_api::control::DEFAULT_BROADCAST_TIMEOUT_MS),
        );
        let r = self
            .request(
                Method::POST,
                &format!("/v1/pools/{}/broadcast", segment(pool)),
            )
            .json(req);
        self.send(r, REQUEST_TIMEOUT.saturating_add(wait))
            .await?
            .json()
            .await
    }

    /// `GET /v1/nodes`.
    pub(crate) async fn nodes(&self) -> Result<offload_api::NodeList, ClientError> {
        let r = self.request(Method::GET, "/v1/nodes");
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `POST /v1/nodes/{id}/drain` with `req`, or `…/undrain` for `None`.
    pub(crate) async fn drain(
        &self,
        node: &str,
        req: Option<&offload_api::DrainRequest>,
    ) -> Result<offload_api::Node, ClientError> {
        let r = match req {
            Some(req) => self
                .request(Method::POST, &format!("/v1/nodes/{}/drain", segment(node)))
                .json(req),
            None => self.request(
                Method::POST,
                &format!("/v1/nodes/{}/undrain", segment(node)),
            ),
        };
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/cron`.
    pub(crate) async fn schedules(&self) -> Result<Vec<Schedule>, ClientError> {
        let r = self.request(Method::GET, "/v1/cron");
        let s: ScheduleList = self.send(r, REQUEST_TIMEOUT).await?.json().await?;
        Ok(s.schedules)
    }

    /// `POST /v1/pools/{pool}/pause|resume` or `/v1/queues/{job}/pause|resume`.
    pub(crate) async fn queue_action(
        &self,
        kind: offload_api::QueueKind,
        name: &str,
        action: &str,
    ) -> Result<offload_api::QueueStatus, ClientError> {
        let base = match kind {
            offload_api::QueueKind::Pool => "/v1/pools",
            offload_api::QueueKind::Job => "/v1/queues",
        };
        let path = format!("{base}/{}/{action}", segment(name));
        self.send(self.request(Method::POST, &path), REQUEST_TIMEOUT)
            .await?
            .json()
            .await
    }

    /// `POST /v1/cron/{name}/pause` or `…/resume` (`action`).
    pub(crate) async fn schedule_action(
        &self,
        name: &str,
        action: &str,
    ) -> Result<(), ClientError> {
        let path = format!("/v1/cron/{}/{action}", segment(name));
        self.send(self.request(Method::POST, &path), REQUEST_TIMEOUT)
            .await?;
        Ok(())
    }

    /// `POST /v1/cron/{name}/run`.
    pub(crate) async fn run_schedule(&self, name: &str) -> Result<Submitted, ClientError> {
        let path = format!("/v1/cron/{}/run", segment(name));
        let r = self.request(Method::POST, &path);
        self.send(r, REQUEST_TIMEOUT).await?.json().await
    }

    /// `GET /v1/events?id=`: the server-sent events of one job (or of everything).
    pub(crate) async fn events(&self, id: Option<&str>) -> Result<EventStream, ClientError> {
        let mut r = self
            .request(Method::GET, "/v1/events")
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = id {
            r = r.query(&[("id", id)]);
        }
        // No overall timeout: the stream lasts as long as it is read.
        let url = format!("{}/v1/events", self.base);
        let resp = r.send().await.map_err(|e| self.transport(&url, &e))?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.bytes().await.unwrap_or_default();
            return Err(api_error(status, &body, self.token.is_some(), &url));
        }
        Ok(EventStream::new(resp))
    }
}

/// Ordinary requests: long enough for a slow disk, short enough to notice a stuck daemon.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The daemon holds a long poll at most this long.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A successful answer.
struct Response {
    url: String,
    inner: reqwest::Response,
}

impl Response {
    async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let url = self.url;
        let bytes = self
            .inner
            .bytes()
            .await
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                reason: error_chain(&e),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
            url,
            reason: format!(
                "{e}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ),
        })
    }
}

/// Turns an error answer into a [`ClientError`], with the API's message when there is one.
fn api_error(status: StatusCode, body: &[u8], had_token: bool, url: &str) -> ClientError {
    let (code, message) = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => (b.error.code.as_str().to_owned(), b.error.message),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (
                status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_lowercase()
                    .replace(' ', "_"),
                if text.is_empty() {
                    format!("{url} answered {status}")
                } else {
                    text.chars().take(300).collect()
                },
            )
        }
    };
    if status == StatusCode::UNAUTHORIZED {
        return ClientError::Unauthorized {
            code,
            message: message.trim_end_matches('.').to_owned(),
            hint: if had_token {
                "the daemon refused this token: check --token / OFFLOAD_TOKEN"
            } else {
                "pass the daemon's token with --token or OFFLOAD_TOKEN"
            },
        };
    }
    ClientError::Api {
        status: status.as_u16(),
        code,
        message,
    }
}

/// A path segment (ids are UUIDs; anything else is escaped so it cannot change the route).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

/// The exit code of a job's outcome (README, "Exit codes").
pub(crate) trait Outcome {
    /// `0` succeeded, `8` cancelled, else by the error's class.
    fn exit_code(&self) -> i32;
}

impl Outcome for JobResult {
    fn exit_code(&self) -> i32 {
        match self.state {
            JobState::Succeeded => exit::OK,
            JobState::Cancelled => exit::CANCELLED,
            _ => match self.error.as_ref().map(|e| e.name.as_str()) {
                Some("TimedOut") => exit::TIMED_OUT,
                Some("Killed" | "Crashed" | "Exited") => exit::DIED,
                Some("ProtocolError") => exit::PROTOCOL,
                Some("ResourceLimit") => exit::RESOURCE_LIMIT,
                _ => exit::FAILED,
            },
        }
    }
}

/// `GET /v1/jobs/{id}/result`: over, or not yet.
#[derive(Debug)]
pub(crate) enum Polled {
    /// `200`: the outcome.
    Done(JobResult),
    /// `202`: still waiting or running.
    Pending(JobPending),
}

/// The query of `GET /v1/jobs`, as the user typed it: the daemon judges the values (its
/// refusal is the message shown), so they pass as text rather than as
/// [`offload_api::ListQuery`]'s parsed types.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) job: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) until: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_become_their_message() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"unknown_job","message":"no job \"x\" in ./jobs"}}"#,
            false,
            "u",
        );
        assert_eq!(e.to_string(), "no job \"x\" in ./jobs (404 unknown_job)");
        assert_eq!(e.exit_code(), exit::USAGE);
        let e = api_error(StatusCode::BAD_GATEWAY, b"", false, "http://x/v1/jobs");
        assert_eq!(e.exit_code(), exit::INTERNAL);
        assert!(
            e.to_string().contains("http://x/v1/jobs answered 502"),
            "{e}"
        );
        let e = api_error(
            StatusCode::UNAUTHORIZED,
            br#"{"error":{"code":"unauthorized","message":"a bearer token is required."}}"#,
            true,
            "u",
        );
        assert!(e.to_string().contains("refused this token"), "{e}");
    }

    #[test]
    fn outcomes_map_to_exit_codes() {
        let r = |state, name: Option<&str>| JobResult {
            id: offload_api::JobId::nil(),
            state,
            result: None,
            error: name.map(|n| offload_api::JobError {
                name: n.into(),
                message: String::new(),
                stack: None,
                retry: true,
            }),
        };
        assert_eq!(r(JobState::Succeeded, None).exit_code(), 0);
        assert_eq!(r(JobState::Dead, Some("ValueError")).exit_code(), 1);
        assert_eq!(r(JobState::Dead, Some("TimedOut")).exit_code(), 3);
        assert_eq!(r(JobState::Dead, Some("Crashed")).exit_code(), 4);
        assert_eq!(r(JobState::Dead, Some("ResourceLimit")).exit_code(), 6);
        assert_eq!(r(JobState::Cancelled, None).exit_code(), 8);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("0193-ab"), "0193-ab");
        assert_eq!(segment("../x?y"), "..%2Fx%3Fy");
    }
}
