//! `[http]` of `offload.toml`: who may talk to the HTTP API and how much it may cost
//! (`docs/security.md` explains each limit).

use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// `[http]` of `offload.toml`. Every field is optional; see [`HttpLimits`] for the defaults.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Host names accepted in the `Host` header besides loopback names and IP literals.
    pub allowed_hosts: Option<Vec<String>>,
    /// Time to receive a request head, counted from the accept or the end of the previous
    /// response (so it is also the keep-alive idle timeout).
    pub header_timeout_ms: Option<u64>,
    /// Time to receive a whole request body once its head arrived.
    pub body_timeout_ms: Option<u64>,
    /// Connections served at once.
    pub max_connections: Option<usize>,
    /// Open `GET /v1/events` streams at once.
    pub max_sse_subscribers: Option<usize>,
    /// `GET /v1/jobs/{id}/result?wait=` waiting at once.
    pub max_long_polls: Option<usize>,
    /// Bytes queued for one event-stream subscriber before it lags.
    pub sse_buffer_bytes: Option<usize>,
    /// Largest progress value or job event forwarded from a job (serialized JSON).
    pub max_event_bytes: Option<usize>,
    /// Largest `params` of a job or cron schedule accepted over HTTP (serialized JSON).
    pub max_params_bytes: Option<usize>,
    /// Largest request body.
    pub max_body_bytes: Option<usize>,
}

/// The limits of the HTTP API, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpLimits {
    /// Extra host names accepted in `Host` (default none: loopback names and IP literals only).
    pub allowed_hosts: Vec<String>,
    /// Request-head timeout, also the keep-alive idle timeout (default 10 s).
    pub header_timeout: Duration,
    /// Request-body timeout (default 30 s).
    pub body_timeout: Duration,
    /// Connections served at once (default 512; clamped under the open-file limit at start).
    pub max_connections: usize,
    /// Event-stream subscribers at once (default 64).
    pub max_sse_subscribers: usize,
    /// Long polls at once (default 256).
    pub max_long_polls: usize,
    /// Per-subscriber event buffer (default 1 MiB).
    pub sse_buffer_bytes: usize,
    /// Largest forwarded progress value or job event (default 64 KiB).
    pub max_event_bytes: usize,
    /// Largest `params` accepted over HTTP (default 1 MiB, at most the protocol frame limit).
    pub max_params_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
            max_sse_subscribers: 64,
            max_long_polls: 256,
            sse_buffer_bytes: 1 << 20,
            max_event_bytes: 64 << 10,
            max_params_bytes: 1 << 20,
        }
    }
}

impl HttpLimits {
    /// Applies a file's `[http]`; `max_body` is the request body limit it may set.
    pub(crate) fn apply(
        &mut self,
        s: HttpSection,
        max_body: &mut usize,
    ) -> Result<(), ConfigError> {
        let frame = offload_protocol::DEFAULT_MAX_FRAME;
        let positive = |key: &str, n: usize| {
            if n == 0 {
                Err(ConfigError::Invalid(format!(
                    "http.{key} must be at least 1"
                )))
            } else {
                Ok(n)
            }
        };
        let ms = |key: &str, v: u64| {
            if v < 10 {
                Err(ConfigError::Invalid(format!(
                    "http.{key} must be at least 10 ms"
                )))
            } else {
                Ok(Duration::from_millis(v))
            }
        };
        if let Some(hosts) = s.allowed_hosts {
            for h in &hosts {
                if h.is_empty() || h.len() > 253 || h.contains(['/', ' ', '@']) {
                    return Err(ConfigError::Invalid(format!(
                        "http.allowed_hosts: {h:?} is not a host name"
                    )));
                }
            }
            self.allowed_hosts = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        }
        if let Some(v) = s.header_timeout_ms {
            self.header_timeout = ms("header_timeout_ms", v)?;
        }
        if let Some(v) = s.body_timeout_ms {
            self.body_timeout = ms("body_timeout_ms", v)?;
        }
        if let Some(n) = s.max_connections {
            self.max_connections = positive("max_connections", n)?;
        }
        if let Some(n) = s.max_sse_subscribers {
            self.max_sse_subscribers = positive("max_sse_subscribers", n)?;
        }
        if let Some(n) = s.max_long_polls {
            self.max_long_polls = positive("max_long_polls", n)?;
        }
        if let Some(n) = s.sse_buffer_bytes {
            self.sse_buffer_bytes = positive("sse_buffer_bytes", n)?;
        }
        if let Some(n) = s.max_event_bytes {
            if n > frame {
                return Err(ConfigError::Invalid(format!(
                    "http.max_event_bytes {n} is over the protocol frame limit {frame}"
                )));
            }
            self.max_event_bytes = positive("max_event_bytes", n)?;
        }
        if let Some(n) = s.max_params_bytes {
            if n > frame {
                return Err(ConfigError::Invalid(format!(
                    "http.max_params_bytes {n} is over the protocol frame limit {frame}"
                )));
            }
            self.max_params_bytes = positive("max_params_bytes", n)?;
        }
        if let Some(n) = s.max_body_bytes {
            *max_body = positive("max_body_bytes", n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_over_the_frame_or_zero_are_refused() {
        let mut body = 1;
        let over = HttpSection {
            max_params_bytes: Some(offload_protocol::DEFAULT_MAX_FRAME + 1),
            ..HttpSection::default()
        };
        let e = HttpLimits::default().apply(over, &mut body).unwrap_err();
        assert!(e.to_string().contains("http.max_params_bytes"), "{e}");
        let zero = HttpSection {
            max_connections: Some(0),
            ..HttpSection::default()
        };
        let e = HttpLimits::default().apply(zero, &mut body).unwrap_err();
        assert!(e.to_string().contains("http.max_connections"), "{e}");
        let body_limit = HttpSection {
            max_body_bytes: Some(4096),
            allowed_hosts: Some(vec!["Offload.Internal".into()]),
            ..HttpSection::default()
        };
        let mut l = HttpLimits::default();
        l.apply(body_limit, &mut body).unwrap();
        assert_eq!(
            (body, l.allowed_hosts),
            (4096, vec!["offload.internal".to_owned()])
        );
    }
}
