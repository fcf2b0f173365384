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
///
/// The params are anything that serializes as JSON: a [`Value`], or the JSON text itself as a
/// [`serde_json::value::RawValue`], written into the frame as it is (a supervisor that got the
/// params as text, such as the Node addon, never parses them). Raw text must be one line: a
/// line break would end the frame (`offload_pool::ChildPool::run_raw` compacts such text).
#[derive(Debug, Clone, Serialize)]
pub struct RunRef<'a, I: Serialize = PrefixedId, P: Serialize + ?Sized = Value> {
    #[serde(rename = "type")]
    tag: RunTag,
    id: I,
    job: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    params: &'a P,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<&'a [Value]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deadline: Option<u64>,
}

impl<'a, I: Serialize, P: Serialize + ?Sized> RunRef<'a, I, P> {
    /// A `run` of `job` with `params`, no path and no deadline.
    pub fn new(id: I, job: &'a str, params: &'a P) -> Self {
        Self {
            tag: RunTag,
            id,
            job,
            path: None,
            params,
            args: None,
            deadline: None,
        }
    }

    /// Sets (or clears) the positional arguments (ee-core's `jobParams`).
    #[must_use]
    pub fn with_args(mut self, args: Option<&'a [Value]>) -> Self {
        self.args = args;
        self
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
        let args = [serde_json::json!(1), serde_json::json!({"b": [2]})];
        for (path, deadline, args) in [
            (None, None, None),
            (Some("/a b/c.js"), None, Some(&args[..])),
            (None, Some(1_700_000_000_123), None),
            (Some("/x.py"), Some(5), Some(&args[..])),
        ] {
            let borrowed = RunRef::new(id, "dir/job", &params)
                .with_path(path)
                .with_args(args)
                .with_deadline(deadline);
            let mut owned = Run::new(id.to_string(), "dir/job", params.clone());
            owned.path = path.map(str::to_owned);
            owned.args = args.map(<[Value]>::to_vec);
            owned.deadline = deadline;
            let owned = ToWorker::Run(owned);
            let frame = encode(&borrowed, 4096).unwrap();
            assert_eq!(frame, encode(&owned, 4096).unwrap());
            let decoded = decode_to_worker(&frame[..frame.len() - 1]).unwrap();
            assert!(matches!(decoded, Decoded::Message(m) if m == owned));
        }
    }

    #[test]
    fn raw_params_are_written_as_they_are_and_decode_as_the_parsed_ones() {
        let text = r#"{"x":[1,"two",null],"y":{"z":"\u00e9\n\"q\""},"n":1.50}"#;
        let raw = serde_json::value::RawValue::from_string(text.to_owned()).unwrap();
        let id = PrefixedId { prefix: "j", n: 3 };
        let frame = encode(
            &RunRef::new(id, "inc", &*raw).with_path(Some("/j.js")),
            4096,
        )
        .unwrap();
        let line = std::str::from_utf8(&frame).unwrap();
        assert!(line.contains(text), "{line}");
        assert_eq!(frame.iter().filter(|&&b| b == b'\n').count(), 1);
        let parsed: Value = serde_json::from_str(text).unwrap();
        let owned = ToWorker::Run(Run::new("j3", "inc", parsed).with_path("/j.js"));
        let decoded = decode_to_worker(&frame[..frame.len() - 1]).unwrap();
        assert!(matches!(decoded, Decoded::Message(m) if m == owned));
    }
}
