//! A retry backoff between the API's form ([`offload_api::Backoff`], also the configuration's:
//! `backoff = { kind = "list", delays_ms = [1000, 5000] }`) and the store's
//! ([`offload_store::Backoff`], which the retry rule reads). An absent `max_delay_ms` is the
//! bound, one hour.

use offload_api::Backoff as Api;
use offload_store::limits::MAX_BACKOFF_MS;
use offload_store::{Backoff, Curve};

/// The store's form of `b`.
pub(crate) fn to_store(b: &Api) -> Backoff {
    let (curve, max_delay_ms, jitter) = match b {
        Api::Fixed {
            delay_ms,
            max_delay_ms,
            jitter,
        } => (Curve::Fixed(*delay_ms), max_delay_ms, jitter),
        Api::Linear {
            delay_ms,
            max_delay_ms,
            jitter,
        } => (Curve::Linear(*delay_ms), max_delay_ms, jitter),
        Api::Exponential {
            delay_ms,
            max_delay_ms,
            jitter,
        } => (Curve::Exponential(*delay_ms), max_delay_ms, jitter),
        Api::List {
            delays_ms,
            max_delay_ms,
            jitter,
        } => (Curve::List(delays_ms.clone()), max_delay_ms, jitter),
    };
    Backoff {
        curve,
        max_delay_ms: max_delay_ms.unwrap_or(MAX_BACKOFF_MS),
        jitter: *jitter,
    }
}

/// The API's form of `b` (its maximum always stated).
pub(crate) fn to_api(b: Backoff) -> Api {
    let max_delay_ms = Some(b.max_delay_ms);
    let jitter = b.jitter;
    match b.curve {
        Curve::Fixed(delay_ms) => Api::Fixed {
            delay_ms,
            max_delay_ms,
            jitter,
        },
        Curve::Linear(delay_ms) => Api::Linear {
            delay_ms,
            max_delay_ms,
            jitter,
        },
        Curve::Exponential(delay_ms) => Api::Exponential {
            delay_ms,
            max_delay_ms,
            jitter,
        },
        Curve::List(delays_ms) => Api::List {
            delays_ms,
            max_delay_ms,
            jitter,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        for b in [
            Backoff::legacy(1000),
            Backoff {
                curve: Curve::Fixed(5),
                max_delay_ms: 3,
                jitter: true,
            },
            Backoff {
                curve: Curve::Linear(5),
                max_delay_ms: MAX_BACKOFF_MS,
                jitter: false,
            },
            Backoff {
                curve: Curve::List(vec![1, 2, 3]),
                max_delay_ms: 2,
                jitter: true,
            },
        ] {
            assert_eq!(to_store(&to_api(b.clone())), b);
        }
        let open = Api::Fixed {
            delay_ms: 1,
            max_delay_ms: None,
            jitter: false,
        };
        assert_eq!(to_store(&open).max_delay_ms, MAX_BACKOFF_MS);
    }
}
