//! A job's retry backoff as the API states it: `{"kind": …}` and the fields of that kind. The
//! bounds are `offload_store::limits`' (one hour per delay, 32 entries in a list); the daemon
//! checks them and the document states them.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a failed job waits before its next attempt (the attempt that failed is `n`,
/// 1-based). Every delay is capped by `max_delay_ms` (default and most: one hour); with
/// `jitter`, the delay is drawn uniformly from 0 up to the capped delay ("full jitter"), so jobs
/// that failed together do not retry together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Backoff {
    /// Always `delay_ms`.
    Fixed {
        /// The delay, in ms.
        #[serde(deserialize_with = "crate::int::one")]
        #[schema(minimum = 0, maximum = 3_600_000)]
        delay_ms: u64,
        /// No delay is longer (default one hour).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::int::opt"
        )]
        #[schema(minimum = 0, maximum = 3_600_000)]
        max_delay_ms: Option<u64>,
        /// Full jitter (default `false`).
        #[serde(default)]
        jitter: bool,
    },
    /// `delay_ms · n`.
    Linear {
        /// The first delay, in ms.
        #[serde(deserialize_with = "crate::int::one")]
        #[schema(minimum = 0, maximum = 3_600_000)]
        delay_ms: u64,
        /// No delay is longer (default one hour).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::int::opt"
        )]
        #[schema(minimum = 0, maximum = 3_600_000)]
        max_delay_ms: Option<u64>,
        /// Full jitter (default `false`).
        #[serde(default)]
        jitter: bool,
    },
    /// `delay_ms · 2^(n-1)`: what a job that names no backoff does, with its pool's
    /// `backoff_ms` (default 1000) and no jitter.
    Exponential {
        /// The first delay, in ms.
        #[serde(deserialize_with = "crate::int::one")]
        #[schema(minimum = 0, maximum = 3_600_000)]
        delay_ms: u64,
        /// No delay is longer (default one hour).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::int::opt"
        )]
        #[schema(minimum = 0, maximum = 3_600_000)]
        max_delay_ms: Option<u64>,
        /// Full jitter (default `false`).
        #[serde(default)]
        jitter: bool,
    },
    /// The `n`th entry of `delays_ms`; past its end, the last entry.
    List {
        /// 1 to 32 delays, in ms (in any order).
        #[serde(deserialize_with = "crate::int::list")]
        #[schema(min_items = 1, max_items = 32, inline, value_type = Vec<u64>)]
        delays_ms: Vec<u64>,
        /// No delay is longer (default one hour).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::int::opt"
        )]
        #[schema(minimum = 0, maximum = 3_600_000)]
        max_delay_ms: Option<u64>,
        /// Full jitter (default `false`).
        #[serde(default)]
        jitter: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_and_write_as_documented() {
        let b: Backoff = serde_json::from_str(
            r#"{"kind":"list","delays_ms":[1000,5000.0,30000],"jitter":true}"#,
        )
        .unwrap();
        assert_eq!(
            b,
            Backoff::List {
                delays_ms: vec![1000, 5000, 30_000],
                max_delay_ms: None,
                jitter: true
            }
        );
        let e: Backoff =
            serde_json::from_str(r#"{"kind":"exponential","delay_ms":500,"max_delay_ms":60000}"#)
                .unwrap();
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"exponential","delay_ms":500,"max_delay_ms":60000,"jitter":false}"#
        );
        for bad in [
            r#"{"kind":"fixed"}"#,
            r#"{"kind":"fixed","delay_ms":-1}"#,
            r#"{"kind":"fixed","delay_ms":1,"delays_ms":[1]}"#,
            r#"{"kind":"list","delays_ms":[1.5]}"#,
            r#"{"kind":"random","delay_ms":1}"#,
        ] {
            assert!(serde_json::from_str::<Backoff>(bad).is_err(), "{bad}");
        }
    }
}
