//! [`Params`]: a job's params as the pool keeps them (for its attempts and retries) — a parsed
//! [`Value`] from Rust callers, or the JSON text itself from callers that hold text (the Node
//! addon), written into the `run` frame as it is, never parsed by the supervisor.

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::PoolError;

/// A job's params.
#[derive(Debug)]
pub(crate) enum Params {
    /// Parsed (`ChildPool::run`, `run_with`, ...).
    Value(Value),
    /// JSON text, one line (`ChildPool::run_raw`, `run_raw_then`).
    Raw(Box<RawValue>),
}

impl Params {
    /// Raw params for the frame: text with a line break (whitespace between tokens: inside a
    /// JSON string a line break is always escaped) is compacted, since the frame is one line.
    ///
    /// # Errors
    ///
    /// [`PoolError::InvalidJob`] when the text cannot be compacted (it cannot happen for text a
    /// `RawValue` accepted; kept typed rather than unwrapped).
    pub(crate) fn raw(text: Box<RawValue>) -> Result<Self, PoolError> {
        let s = text.get();
        if !s.contains(['\n', '\r']) {
            return Ok(Self::Raw(text));
        }
        let compact = serde_json::from_str::<Value>(s)
            .and_then(|v| serde_json::value::to_raw_value(&v))
            .map_err(|e| PoolError::InvalidJob(format!("params: {e}")))?;
        Ok(Self::Raw(compact))
    }
}

impl Params {
    /// The params as a parsed value (the descriptor path builds an owned `Run`).
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Self::Value(v) => v.clone(),
            // A `RawValue` holds valid JSON text: parsing it again cannot fail.
            Self::Raw(r) => serde_json::from_str(r.get()).unwrap_or(Value::Null),
        }
    }
}

impl Serialize for Params {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => v.serialize(s),
            Self::Raw(r) => r.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_text_with_line_breaks_is_compacted_and_one_line_text_is_kept_as_it_is() {
        let kept = RawValue::from_string(r#"{"a": [1, 2], "s":"x\ny"}"#.into()).unwrap();
        let Params::Raw(r) = Params::raw(kept).unwrap() else {
            unreachable!()
        };
        assert_eq!(r.get(), r#"{"a": [1, 2], "s":"x\ny"}"#);
        let broken =
            RawValue::from_string("{\n  \"a\": [1,\r\n 2],\"s\":\"x\\ny\"\n}".into()).unwrap();
        let p = Params::raw(broken).unwrap();
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(text, r#"{"a":[1,2],"s":"x\ny"}"#);
        assert!(!text.contains('\n'));
    }
}
