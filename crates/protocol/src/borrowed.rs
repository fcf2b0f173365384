//! Borrowed forms of the supervisor's hottest frame: a `run` encoded straight from the
//! caller's data, with no copy of the params and no `String` for the wire id.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

/// A wire id made of a static prefix and a number (`j17`), written without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefixedId {
    /// The prefix (`"j"` for a pool's jobs).
    pub prefix: &'static str,
    /// The number.
    pub n: u64,
}

impl fmt::Display for PrefixedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix, self.n)
    }
}

impl Serialize for PrefixedId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The `type` tag of a `run`.
#[derive(Debug, Clone, Copy)]
struct RunTag;

impl Serialize for RunTag {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("run")
    }
}

/// A `run` that borrows its parts: it encodes exactly as [`ToWorker::Run`](crate::ToWorker)
/// of the same [`Run`](crate::Run) (without `args`), so a supervisor that keeps a job's params
/// for a retry sends them without copying them.
///
/// ```
/// use offload_protocol::{encode, PrefixedId, Run, RunRef, ToWorker};
///
/// let params = serde_json::json!({"x": 1});
/// let id = PrefixedId { prefix: "j", n: 7 };
/// let borrowed = RunRef::new(id, "inc", &params).with_path(Some("/jobs/inc.js"));
/// let owned = ToWorker::Run(Run::new("j7", "inc", params.clone()).with_path("/jobs/inc.js"));
/// assert_eq!(encode(&borrowed, 1024).unwrap(), encode(&owned, 1024).unwrap());
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct RunRef<'a, I: Serialize = PrefixedId> {
    #[serde(rename = "type")]
    tag: RunTag,
    id: I,
    job: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    params: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<u64>,
}

impl<'a, I: Serialize> RunRef<'a, I> {
    /// A `run` of `job` with `params`, no path and no deadline.
    pub fn new(id: I, job: &'a str, params: &'a Value) -> Self {
        Self {
            tag: RunTag,
            id,
            job,
            path: None,
            params,
            deadline: None,
        }
    }

    /// Sets (or clears) the resolved absolute path.
    #[must_use]
    pub fn with_path(mut self, path: Option<&'a str>) -> Self {
        self.path = path;
        self
    }

    /// Sets (or clears) the soft deadline (Unix epoch milliseconds).
    #[must_use]
    pub fn with_deadline(mut self, deadline_ms: Option<u64>) -> Self {
        self.deadline = deadline_ms;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_to_worker, encode, Decoded, Run, ToWorker};

    #[test]
    fn a_borrowed_run_encodes_and_decodes_as_the_owned_one() {
        let params = serde_json::json!({"x": [1, "two", null], "y": {"z": "é\n\"q\""}});
        let id = PrefixedId {
            prefix: "j",
            n: u64::MAX,
        };
        for (path, deadline) in [
            (None, None),
            (Some("/a b/c.js"), None),
            (None, Some(1_700_000_000_123)),
            (Some("/x.py"), Some(5)),
        ] {
            let borrowed = RunRef::new(id, "dir/job", &params)
                .with_path(path)
                .with_deadline(deadline);
            let mut owned = Run::new(id.to_string(), "dir/job", params.clone());
            owned.path = path.map(str::to_owned);
            owned.deadline = deadline;
            let owned = ToWorker::Run(owned);
            let frame = encode(&borrowed, 4096).unwrap();
            assert_eq!(frame, encode(&owned, 4096).unwrap());
            let decoded = decode_to_worker(&frame[..frame.len() - 1]).unwrap();
            assert!(matches!(decoded, Decoded::Message(m) if m == owned));
        }
    }
}
